"""Long-form audio as asynchronous jobs: the text cut into parts on a queue that every replica works, the parts joined by one of them, the caller told by a signed callback."""
