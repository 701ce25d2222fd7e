"""What every stage shares: errors, settings, vocabulary, time, the home folder and the store."""
