"""The pure core: records, enums and domain events. Imports nothing else from server/."""
