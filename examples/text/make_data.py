"""Write tickets.csv: short customer-support messages labelled with their topic.

The set is generated, deterministically (seed 7), from phrase pools a support team would
recognise: five topics (billing, shipping, account, technical, returns), openings and
closings, typos, lower-case and terse variants, and ~6% of messages that touch two topics
(a refund for a double charge, a login problem while tracking a parcel), which a triage
team routes to one topic or the other: labelled 70/30, so no model gets them all right.
Run it again to get the same file:

    python examples/text/make_data.py            # writes examples/text/tickets.csv
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

SEED = 7
ROWS_PER_TOPIC = 320

TOPICS: dict[str, list[str]] = {
    "billing": [
        "I was charged twice for order {order}",
        "my card got billed {amount} but I never placed this order",
        "why is there an extra fee of {amount} on my invoice",
        "the invoice for {month} shows the wrong VAT number",
        "please cancel my subscription before the next payment on the {day}",
        "you took {amount} from my account after I cancelled",
        "can I get a copy of the receipt for my payment in {month}",
        "my promo code was not applied and I paid full price",
        "I want to switch from monthly to yearly billing",
        "the price at checkout was higher than the one on the product page",
        "my payment failed but the money left my bank account",
        "how do I update the credit card on file",
        "I was billed for the premium plan but I am on basic",
        "there is a charge of {amount} I do not recognise",
        "please send the invoice to our accounting department instead",
        "the discount for students was not applied to my bill",
    ],
    "shipping": [
        "where is my package, order {order} still says processing",
        "tracking number for order {order} has not updated in {n} days",
        "my parcel was delivered to the wrong address",
        "the courier marked it delivered but nothing arrived",
        "can I change the delivery address for order {order}",
        "how long does shipping to {country} usually take",
        "the box arrived crushed and soaking wet",
        "order {order} is {n} days late, when will it arrive",
        "do you ship to {country} and what does it cost",
        "the delivery driver never rang the bell and left a note",
        "I paid for express shipping but it took {n} days",
        "only half of my order arrived, the rest is missing",
        "my package is stuck in customs in {country}",
        "can you deliver on saturday instead",
        "the tracking link gives an error page",
        "parcel returned to sender, I never got a delivery attempt",
    ],
    "account": [
        "I can't log in, it says my password is wrong",
        "the password reset email never arrives",
        "how do I change the email address on my account",
        "my account was locked after too many attempts",
        "please delete my account and all my data",
        "I think someone else logged into my account from {country}",
        "two factor codes are not being sent to my phone",
        "I want to merge my two accounts into one",
        "how do I change my username",
        "the verification link in the signup email has expired",
        "I no longer have access to the phone number for 2FA",
        "can I add a second user to my company account",
        "I keep getting logged out every few minutes",
        "my profile picture and name disappeared",
        "how do I download all the data you store about me",
        "the sign in with google button does nothing",
    ],
    "technical": [
        "the app crashes every time I open the settings page",
        "the website shows error {code} when I click checkout",
        "sync between my phone and laptop stopped working",
        "the export to pdf button produces an empty file",
        "the app is extremely slow since the last update",
        "notifications stopped working on android {n}",
        "I get a blank white screen after the splash screen",
        "the api returns {code} for every request since this morning",
        "search does not return any results even for exact names",
        "the dark mode setting resets after a restart",
        "uploading a photo fails with a network error",
        "the installer hangs at {n} percent on windows",
        "the page layout is broken on my tablet",
        "the integration with slack stopped posting messages",
        "the desktop app uses all my cpu and the fan spins",
        "videos in the app freeze after a few seconds",
    ],
    "returns": [
        "I want to return the shoes from order {order}, they are too small",
        "how do I send back an item I don't need",
        "the jacket does not fit, can I exchange it for a size {size}",
        "I returned my order {n} days ago and still no refund",
        "can I get a return label for order {order}",
        "the product is not as described, I want my money back",
        "is the return shipping free",
        "I received the wrong color and want to exchange it",
        "the item broke after one week, can I return it",
        "what is your return policy for opened items",
        "I dropped the parcel at the post office, when is my refund processed",
        "can I return a gift without the receipt",
        "the exchange item you sent is also the wrong size",
        "I want to cancel the exchange and just get a refund",
        "the return portal says my order is not eligible",
        "how many days do I have to return a product",
    ],
}

#: Messages that touch two topics: (usual route, other route, text). Triage teams route
#: them inconsistently, so the label is the usual route 70% of the time.
MIXED: list[tuple[str, str, str]] = [
    (
        "billing",
        "returns",
        "refund the second charge, I only ordered once and the parcel came once",
    ),
    ("billing", "returns", "I returned nothing but you charged me a restocking fee"),
    ("returns", "billing", "I sent the item back, please refund it to my card"),
    ("returns", "shipping", "the package arrived damaged and I want to send it back"),
    ("shipping", "account", "I can't log in to see the tracking, where is order {order}"),
    ("account", "billing", "I can't log in to pay my invoice"),
    ("technical", "shipping", "the app crashes when I try to track my parcel"),
    ("technical", "billing", "the checkout page errors so I was charged but got no confirmation"),
    ("shipping", "billing", "the courier wants a customs fee of {amount} before delivering"),
    ("account", "technical", "after the app update my account settings are gone"),
]
USUAL_ROUTE_SHARE = 0.7

OPENINGS = [
    "",
    "",
    "",
    "hi, ",
    "hello, ",
    "hey ",
    "good morning, ",
    "urgent: ",
    "help! ",
    "dear support, ",
]
CLOSINGS = [
    "",
    "",
    "",
    " thanks",
    " thank you!",
    " please help",
    " asap please",
    " regards",
    "?",
    "!!",
]
COUNTRIES = ["Germany", "Canada", "Japan", "Brazil", "Norway", "Spain", "Australia", "Kenya"]
MONTHS = ["january", "march", "april", "june", "august", "october", "november"]


def fill(template: str, rng: random.Random) -> str:
    return template.format(
        order=f"#{rng.randint(10000, 99999)}",
        amount=f"${rng.randint(5, 300)}.{rng.randint(0, 99):02d}",
        month=rng.choice(MONTHS),
        day=f"{rng.randint(1, 28)}th",
        n=rng.randint(2, 21),
        country=rng.choice(COUNTRIES),
        code=rng.choice(["500", "502", "403", "404", "E-1042", "timeout"]),
        size=rng.choice(["S", "M", "L", "XL", "42", "44"]),
    )


def vary(text: str, rng: random.Random) -> str:
    text = rng.choice(OPENINGS) + text + rng.choice(CLOSINGS)
    if rng.random() < 0.15:  # a typo: two neighbouring letters swapped
        i = rng.randrange(1, max(2, len(text) - 2))
        text = text[: i - 1] + text[i] + text[i - 1] + text[i + 1 :]
    if rng.random() < 0.2:
        text = text.lower()
    elif rng.random() < 0.1:
        text = text.upper()
    return text.strip()


def make_rows(seed: int = SEED) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for topic, templates in TOPICS.items():
        for _ in range(ROWS_PER_TOPIC):
            rows.append((vary(fill(rng.choice(templates), rng), rng), topic))
    for _ in range(len(rows) // 16):
        usual, other, template = rng.choice(MIXED)
        topic = usual if rng.random() < USUAL_ROUTE_SHARE else other
        rows.append((vary(fill(template, rng), rng), topic))
    rng.shuffle(rows)
    return rows


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("tickets.csv")
    rows = make_rows()
    with target.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "topic"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} tickets to {target}")


if __name__ == "__main__":
    main()
