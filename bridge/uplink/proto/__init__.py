"""The Sparkplug B payload schema and its generated code (`make protos`)."""
