"""One module per `soundaq` subcommand."""
