"""Local stand-ins for vendor APIs: real HTTP servers on 127.0.0.1 that speak each vendor's wire format."""
