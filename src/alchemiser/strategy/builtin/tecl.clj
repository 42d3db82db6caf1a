; TECL: technology for the long term. Above SPY's 200-day average, hold TECL through a
; managed-futures switch (XLK RSI vs KMLM RSI), stepping aside to UVXY / BIL when overbought;
; below it, buy leveraged dips, hedge volatility spikes, else switch to SQQQ or BSV.
; Source: design/SYMPHONY.md, built-in strategies
;
; Switcher(S) is written out inline each time it is used (the language has no functions):
;   if XLK RSI > KMLM RSI: BIL when XLK RSI > 81, else TECL;
;   otherwise TECL when XLK RSI < 29, else S.
(defsymphony "TECL" {:rebalance-frequency :daily}
  ;; Market regime: SPY close above its 200-day simple average.
  (if (> (current-price "SPY") (moving-average-price "SPY" {:window 200}))
    ;; Bull: TQQQ RSI > 79 or SPY RSI > 80 -> 25% UVXY / 75% BIL; otherwise Switcher(BIL).
    [(group "Bull"
       [(if (> (rsi "TQQQ" {:window 10}) 79)
          [(group "Overbought: TQQQ"
             [(weight-specified 0.25 (asset "UVXY") 0.75 (asset "BIL"))])]
          [(if (> (rsi "SPY" {:window 10}) 80)
             [(group "Overbought: SPY"
                [(weight-specified 0.25 (asset "UVXY") 0.75 (asset "BIL"))])]
             ;; Switcher(S) with S = BIL
             [(group "Switcher: S = BIL"
                [(if (> (rsi "XLK" {:window 10}) (rsi "KMLM" {:window 10}))
                   [(if (> (rsi "XLK" {:window 10}) 81)
                      [(asset "BIL")]
                      [(asset "TECL")])]
                   [(if (< (rsi "XLK" {:window 10}) 29)
                      [(asset "TECL")]
                      [(asset "BIL")])])])])])])]
    ;; Bear: TQQQ RSI < 31 -> TECL; else SPXL RSI < 29 -> SPXL; else if UVXY RSI > 74:
    ;; 15% UVXY / 85% BIL when UVXY RSI > 84, else BIL; otherwise
    ;; Switcher(whichever of SQQQ and BSV has the higher RSI(9)).
    [(group "Bear"
       [(if (< (rsi "TQQQ" {:window 10}) 31)
          [(group "Oversold: TQQQ" [(asset "TECL")])]
          [(if (< (rsi "SPXL" {:window 10}) 29)
             [(group "Oversold: SPXL" [(asset "SPXL")])]
             [(if (> (rsi "UVXY" {:window 10}) 74)
                [(group "Volatility spike"
                   [(if (> (rsi "UVXY" {:window 10}) 84)
                      [(weight-specified 0.15 (asset "UVXY") 0.85 (asset "BIL"))]
                      [(asset "BIL")])])]
                ;; Switcher(S) with S = the higher RSI(9) of SQQQ and BSV
                [(group "Switcher: S = higher RSI(9) of SQQQ, BSV"
                   [(if (> (rsi "XLK" {:window 10}) (rsi "KMLM" {:window 10}))
                      [(if (> (rsi "XLK" {:window 10}) 81)
                         [(asset "BIL")]
                         [(asset "TECL")])]
                      [(if (< (rsi "XLK" {:window 10}) 29)
                         [(asset "TECL")]
                         [(filter (rsi {:window 9}) (select-top 1)
                            [(asset "SQQQ") (asset "BSV")])])])])])])])])]))
