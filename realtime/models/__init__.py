"""Networks (plain nn.Modules) and the code that locates and verifies model files."""
