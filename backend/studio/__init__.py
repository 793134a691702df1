"""Everything sent to or read from Label Studio: the client (label-studio-sdk), the one prediction
builder, and writing a version's predictions queue head first."""
