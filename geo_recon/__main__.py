from geo_recon.cli import main

main()
