from flakeguard.cli.main import main

main()
