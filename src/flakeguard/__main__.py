from flakeguard.cli import main

main()
