from streamnst.entry import main

main()
