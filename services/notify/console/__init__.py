"""The coordination-centre console: web pages, served by the notify workers, where the people who
act on alerts sign in, see the board, open an alert and acknowledge it."""
