from clearsight.cli.main import main

main()
