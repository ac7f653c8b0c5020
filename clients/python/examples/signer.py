import asyncio, wssign

def policy(req: wssign.SignRequest) -> bool:      # True signs; False or wssign.Reject(why) declines
    return req.message.startswith(b"invoice:")

async def main() -> None:
    key = wssign.load_key("signer.key")            # PKCS#8 PEM or hex seed, mode 0600
    async with wssign.Signer("ws://127.0.0.1:8080/v1/ws", key, policy=policy) as signer:
        await signer.wait_closed()                 # reconnects with backoff until closed

asyncio.run(main())
