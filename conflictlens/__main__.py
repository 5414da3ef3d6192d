from conflictlens.entry import main

main()
