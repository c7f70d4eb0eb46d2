from claimpay.cli import main

main()
