"""The TempAudioPolicies and TempAudioLexicons the service serves: the policy book, its sources (built in, a file, the Kubernetes API) and their watches."""
