"""A WebSocket client of the session store's /api/events in its own thread, keeping every message, for
end-to-end tests that drive the store from synchronous code."""
from __future__ import annotations

import asyncio
import json
import threading

import aiohttp


class EventListener:
    def __init__(self, url: str) -> None:
        self.messages: list[dict] = []
        self.connected = threading.Event()

        async def listen() -> None:
            async with aiohttp.ClientSession() as session, session.ws_connect(url) as socket:
                self.connected.set()
                async for message in socket:
                    self.messages.append(json.loads(message.data))

        self.thread = threading.Thread(target=lambda: asyncio.run(listen()), daemon=True)
        self.thread.start()

    def types(self) -> list[str]:
        return [m["type"] for m in list(self.messages)]

    def vehicle_events(self, vin: str) -> list[dict]:
        return [m for m in list(self.messages) if m["type"] == "vehicle" and m["vin"] == vin]
