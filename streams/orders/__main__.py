from streams.orders.main import main

main()
