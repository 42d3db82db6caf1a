"""Development tools that never ship to Lambda: the local stack and the deploy build."""
