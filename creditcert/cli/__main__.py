"""`python -m creditcert.cli`: the same command as the installed `creditcert`."""

from creditcert.cli.app import main

main()
