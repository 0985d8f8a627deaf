from agentcritic.cli import main

main()
