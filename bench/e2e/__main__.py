from bench.e2e.cli import main

main()
