"""Text to audio: voices and their prepared models, synthesis, SSML, say-as, lexicons applied, word alignment, speech marks, encoders."""
