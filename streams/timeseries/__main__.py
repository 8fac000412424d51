from streams.timeseries.main import main

main()
