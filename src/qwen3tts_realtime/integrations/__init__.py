"""Framework integrations (Pipecat, LiveKit); each is imported only through its public module."""
