"""Reports: backtest statistics, outputs and the HTML pages a user reads."""
