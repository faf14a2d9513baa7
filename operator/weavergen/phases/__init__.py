"""The DMEDI phases as code shared by Jobs, the inline executor, the CLI and the simulation."""
