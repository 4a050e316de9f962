"""Submission files: RLE codecs, the writer and the validator that checks a file before it is sent."""
