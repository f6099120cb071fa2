from nerlstm.cli import main

main()
