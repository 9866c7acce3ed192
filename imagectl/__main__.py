from imagectl.cli import main

main()
