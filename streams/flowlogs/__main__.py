from streams.flowlogs.main import main

main()
