from flakeguard.cli.root import main

main()
