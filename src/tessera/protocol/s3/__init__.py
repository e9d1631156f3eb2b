"""The S3 protocol: errors, XML documents, SigV4, aws-chunked bodies and headers."""
