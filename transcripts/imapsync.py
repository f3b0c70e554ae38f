"""imapsync --debugimap logs into transcripts (placeholder, filled below)."""
def looks_like_log(path):
    return False
