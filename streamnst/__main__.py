from streamnst.cli import main

main()
