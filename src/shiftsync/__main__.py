from shiftsync.cli import main

main()
