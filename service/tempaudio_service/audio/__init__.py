"""One request's audio made and kept: render on the pool, store the pair under a policy, repeat a copy, sign; the services a request is served with."""
