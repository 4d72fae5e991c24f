"""Federation services: everything this server does with other ActivityPub servers.

    client.py    the shared outgoing HTTP client and in-memory look-up caches (`state.remote`)
    keys.py      the instance actor's key, local accounts' signing keys, owners of remote keys
    actors.py    WebFinger, fetching and storing remote actors
    notes.py     remote notes → statuses (with tags, mentions, polls and media)
    threads.py   thread backfill from a conversation's origin
    lookup.py    a handle or URL typed into search → account or status
    inbound.py   the inbox rules: who may send what, and applying accepted activities
    outbound.py  domain events about local accounts → activities in the delivery queue
    serving.py   what our ActivityPub and WebFinger endpoints serve, loaded for the renderer
"""
