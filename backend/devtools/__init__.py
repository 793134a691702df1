"""Tools for trying the backend on one machine: a throwaway Label Studio and the `demo` command."""
