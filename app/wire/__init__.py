"""Each provider's wire format, in one place: its HTTP error bodies, its WebSocket messages and
close codes. The simulator speaks them as the provider; the drop-in routes write the gateway's own
refusals in them and relay the provider's. Nothing here calls anything: builders and constants only.
"""
