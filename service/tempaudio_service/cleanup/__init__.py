"""``tempaudio-cleanup``, the CronJob's program: expired audio and abandoned uploads deleted."""
