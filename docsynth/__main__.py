from docsynth.cli.app import main

main()
