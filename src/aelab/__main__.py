from aelab.cli import main

main()
