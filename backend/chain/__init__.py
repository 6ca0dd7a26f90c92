"""Everything that talks to Solidity or to a chain: compile, artifacts, devnet, deploy, errors."""
