; KMLM switcher: a compact member of the TECL family. UVXY when any of a list of
; equity funds is overbought, leveraged dip buys when oversold, otherwise the lowest-RSI
; of TECL/SOXL/SVIX if XLK RSI beats KMLM RSI, else the higher-RSI of SQQQ/TLT.
; Source: design/SYMPHONY.md, built-in strategies
(defsymphony "KMLM switcher" {:rebalance-frequency :daily}
  ;; 1. Overbought screen, first hit wins -> UVXY: RSI > 79 for QQQE, VTV, VOX, TECL,
  ;;    VOOG, VOOV; XLP > 75; TQQQ > 79; XLY > 80; FAS > 80; SPY > 80.
  (if (> (rsi "QQQE" {:window 10}) 79)
    [(group "Overbought: QQQE" [(asset "UVXY")])]
    [(if (> (rsi "VTV" {:window 10}) 79)
       [(group "Overbought: VTV" [(asset "UVXY")])]
       [(if (> (rsi "VOX" {:window 10}) 79)
          [(group "Overbought: VOX" [(asset "UVXY")])]
          [(if (> (rsi "TECL" {:window 10}) 79)
             [(group "Overbought: TECL" [(asset "UVXY")])]
             [(if (> (rsi "VOOG" {:window 10}) 79)
                [(group "Overbought: VOOG" [(asset "UVXY")])]
                [(if (> (rsi "VOOV" {:window 10}) 79)
                   [(group "Overbought: VOOV" [(asset "UVXY")])]
                   [(if (> (rsi "XLP" {:window 10}) 75)
                      [(group "Overbought: XLP" [(asset "UVXY")])]
                      [(if (> (rsi "TQQQ" {:window 10}) 79)
                         [(group "Overbought: TQQQ" [(asset "UVXY")])]
                         [(if (> (rsi "XLY" {:window 10}) 80)
                            [(group "Overbought: XLY" [(asset "UVXY")])]
                            [(if (> (rsi "FAS" {:window 10}) 80)
                               [(group "Overbought: FAS" [(asset "UVXY")])]
                               [(if (> (rsi "SPY" {:window 10}) 80)
                                  [(group "Overbought: SPY" [(asset "UVXY")])]
                                  ;; 2. Dip buys: TQQQ RSI < 30 -> TECL; SOXL < 30 -> SOXL;
                                  ;;    SPXL < 30 -> SPXL.
                                  [(if (< (rsi "TQQQ" {:window 10}) 30)
                                     [(group "Dip buy: TQQQ" [(asset "TECL")])]
                                     [(if (< (rsi "SOXL" {:window 10}) 30)
                                        [(group "Dip buy: SOXL" [(asset "SOXL")])]
                                        [(if (< (rsi "SPXL" {:window 10}) 30)
                                           [(group "Dip buy: SPXL" [(asset "SPXL")])]
                                           ;; 3. If XLK RSI > KMLM RSI: the one of TECL, SOXL, SVIX
                                           ;;    with the lowest RSI; otherwise the one of SQQQ and
                                           ;;    TLT with the highest RSI.
                                           [(group "Switcher"
                                              [(if (> (rsi "XLK" {:window 10}) (rsi "KMLM" {:window 10}))
                                                 [(filter (rsi {:window 10}) (select-bottom 1)
                                                    [(asset "TECL") (asset "SOXL") (asset "SVIX")])]
                                                 [(filter (rsi {:window 10}) (select-top 1)
                                                    [(asset "SQQQ") (asset "TLT")])])])])])])])])])])])])])])])])]))
