from streams.launches.main import main

main()
