from streams.telemetry.main import main

main()
