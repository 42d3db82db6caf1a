; Nuclear: nuclear-energy stocks while SPY is above its 200-day average, with a
; volatility front-runner (UVXY / BTAL) when large caps are overbought, leveraged dip
; buys when oversold, and two inverse-volatility-weighted Nasdaq hedges in a bear market.
; Source: design/SYMPHONY.md, built-in strategies
(defsymphony "Nuclear" {:rebalance-frequency :daily}
  ;; 1. Overbought cascade over SPY, IOO, TQQQ, VTV, XLF, in that order. At the first
  ;;    symbol whose RSI > 79: UVXY if that symbol or any later one in the list has
  ;;    RSI > 81, otherwise 75% UVXY / 25% BTAL.
  (if (> (rsi "SPY" {:window 10}) 79)
    [(group "Overbought: SPY"
       ;; > 81 check over SPY, IOO, TQQQ, VTV, XLF
       [(if (> (rsi "SPY" {:window 10}) 81)
          [(asset "UVXY")]
          [(if (> (rsi "IOO" {:window 10}) 81)
             [(asset "UVXY")]
             [(if (> (rsi "TQQQ" {:window 10}) 81)
                [(asset "UVXY")]
                [(if (> (rsi "VTV" {:window 10}) 81)
                   [(asset "UVXY")]
                   [(if (> (rsi "XLF" {:window 10}) 81)
                      [(asset "UVXY")]
                      [(weight-specified 0.75 (asset "UVXY") 0.25 (asset "BTAL"))])])])])])])]
    [(if (> (rsi "IOO" {:window 10}) 79)
       [(group "Overbought: IOO"
          ;; > 81 check over IOO, TQQQ, VTV, XLF
          [(if (> (rsi "IOO" {:window 10}) 81)
             [(asset "UVXY")]
             [(if (> (rsi "TQQQ" {:window 10}) 81)
                [(asset "UVXY")]
                [(if (> (rsi "VTV" {:window 10}) 81)
                   [(asset "UVXY")]
                   [(if (> (rsi "XLF" {:window 10}) 81)
                      [(asset "UVXY")]
                      [(weight-specified 0.75 (asset "UVXY") 0.25 (asset "BTAL"))])])])])])]
       [(if (> (rsi "TQQQ" {:window 10}) 79)
          [(group "Overbought: TQQQ"
             ;; > 81 check over TQQQ, VTV, XLF
             [(if (> (rsi "TQQQ" {:window 10}) 81)
                [(asset "UVXY")]
                [(if (> (rsi "VTV" {:window 10}) 81)
                   [(asset "UVXY")]
                   [(if (> (rsi "XLF" {:window 10}) 81)
                      [(asset "UVXY")]
                      [(weight-specified 0.75 (asset "UVXY") 0.25 (asset "BTAL"))])])])])]
          [(if (> (rsi "VTV" {:window 10}) 79)
             [(group "Overbought: VTV"
                ;; > 81 check over VTV, XLF
                [(if (> (rsi "VTV" {:window 10}) 81)
                   [(asset "UVXY")]
                   [(if (> (rsi "XLF" {:window 10}) 81)
                      [(asset "UVXY")]
                      [(weight-specified 0.75 (asset "UVXY") 0.25 (asset "BTAL"))])])])]
             [(if (> (rsi "XLF" {:window 10}) 79)
                [(group "Overbought: XLF"
                   ;; > 81 check over XLF
                   [(if (> (rsi "XLF" {:window 10}) 81)
                      [(asset "UVXY")]
                      [(weight-specified 0.75 (asset "UVXY") 0.25 (asset "BTAL"))])])]
                ;; None of the five above 79, but VOX is: UVXY if XLF RSI > 81,
                ;; else 75% UVXY / 25% BTAL. (XLF RSI <= 79 on this path, so the > 81
                ;; test cannot pass and this yields 75/25; kept as the spec states it.)
                [(if (> (rsi "VOX" {:window 10}) 79)
                   [(group "Overbought: VOX"
                      [(if (> (rsi "XLF" {:window 10}) 81)
                         [(asset "UVXY")]
                         [(weight-specified 0.75 (asset "UVXY") 0.25 (asset "BTAL"))])])]
                   ;; 2. Oversold: TQQQ RSI < 30 -> TQQQ; else SPY RSI < 30 -> UPRO.
                   [(if (< (rsi "TQQQ" {:window 10}) 30)
                      [(group "Oversold: TQQQ" [(asset "TQQQ")])]
                      [(if (< (rsi "SPY" {:window 10}) 30)
                         [(group "Oversold: SPY" [(asset "UPRO")])]
                         ;; Market regime: SPY close above its 200-day simple average.
                         [(if (> (current-price "SPY") (moving-average-price "SPY" {:window 200}))
                            ;; 3. Bull: the 3 nuclear-energy names with the highest
                            ;;    90-day moving-average-return, equal weight.
                            [(group "Bull: nuclear energy"
                               [(filter (moving-average-return {:window 90}) (select-top 3)
                                  [(asset "SMR")
                                   (asset "BWXT")
                                   (asset "LEU")
                                   (asset "EXC")
                                   (asset "NLR")
                                   (asset "OKLO")])])]
                            ;; 4. Bear: inverse volatility (14 days) over two groups.
                            [(group "Bear"
                               [(weight-inverse-volatility 14
                                  [(group "Bear 1"
                                     ;; PSQ RSI < 35 -> SQQQ
                                     [(if (< (rsi "PSQ" {:window 10}) 35)
                                        [(asset "SQQQ")]
                                        ;; QQQ down more than 10% over 60 days:
                                        ;; TQQQ if TLT RSI(20) > PSQ RSI(20), else PSQ
                                        [(if (< (cumulative-return "QQQ" {:window 60}) -10)
                                           [(if (> (rsi "TLT" {:window 20}) (rsi "PSQ" {:window 20}))
                                              [(asset "TQQQ")]
                                              [(asset "PSQ")])]
                                           ;; TQQQ above its 20-day average:
                                           ;; TQQQ if TLT RSI(20) > PSQ RSI(20), else SQQQ
                                           [(if (> (current-price "TQQQ") (moving-average-price "TQQQ" {:window 20}))
                                              [(if (> (rsi "TLT" {:window 20}) (rsi "PSQ" {:window 20}))
                                                 [(asset "TQQQ")]
                                                 [(asset "SQQQ")])]
                                              ;; IEF RSI(10) > PSQ RSI(20) -> SQQQ
                                              [(if (> (rsi "IEF" {:window 10}) (rsi "PSQ" {:window 20}))
                                                 [(asset "SQQQ")]
                                                 ;; QQQ if TLT RSI(20) > PSQ RSI(20), else SQQQ
                                                 [(if (> (rsi "TLT" {:window 20}) (rsi "PSQ" {:window 20}))
                                                    [(asset "QQQ")]
                                                    [(asset "SQQQ")])])])])])])
                                   (group "Bear 2"
                                     ;; PSQ RSI < 35 -> SQQQ
                                     [(if (< (rsi "PSQ" {:window 10}) 35)
                                        [(asset "SQQQ")]
                                        ;; TQQQ above its 20-day average:
                                        ;; TQQQ if TLT RSI(20) > PSQ RSI(20), else SQQQ
                                        [(if (> (current-price "TQQQ") (moving-average-price "TQQQ" {:window 20}))
                                           [(if (> (rsi "TLT" {:window 20}) (rsi "PSQ" {:window 20}))
                                              [(asset "TQQQ")]
                                              [(asset "SQQQ")])]
                                           ;; QQQ if TLT RSI(20) > PSQ RSI(20), else SQQQ
                                           [(if (> (rsi "TLT" {:window 20}) (rsi "PSQ" {:window 20}))
                                              [(asset "QQQ")]
                                              [(asset "SQQQ")])])])])])])])])])])])])])])]))
