from nyutai.cli import main

main()
