"""A built-in, general-purpose function library for generating training data.

Written for fncall (not taken from any benchmark). Each entry is a ``Tool`` plus question templates:
``{param}`` placeholders are filled with values drawn from the schema, and the gold call carries
exactly the parameters a template mentions (so optional parameters appear in some questions only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fncall.types import Tool


@dataclass(frozen=True, kw_only=True)
class LibraryFunction:
    tool: Tool
    questions: tuple[str, ...]


def _param(kind: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "description": description, **extra}


def _fn(
    name: str,
    description: str,
    params: dict[str, dict[str, Any]],
    required: list[str],
    questions: list[str],
) -> LibraryFunction:
    schema = {"type": "object", "properties": params, "required": required}
    return LibraryFunction(
        tool=Tool(name=name, description=description, parameters=schema), questions=tuple(questions)
    )


S, INT, N, B = "string", "integer", "number", "boolean"
UNITS = ["celsius", "fahrenheit"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR"]

BUILTIN_LIBRARY: tuple[LibraryFunction, ...] = (
    _fn(
        "get_current_weather",
        "Get the current weather conditions for a city.",
        {
            "city": _param(S, "City name, e.g. Lisbon"),
            "unit": _param(S, "Temperature unit", enum=UNITS),
        },
        ["city"],
        [
            "What's the weather like in {city} right now?",
            "Tell me the current weather in {city} in {unit}.",
            "Is it raining in {city} at the moment?",
            "Current conditions for {city}, please, with temperatures in {unit}.",
        ],
    ),
    _fn(
        "get_weather_forecast",
        "Get a daily weather forecast for a city for the next few days.",
        {
            "city": _param(S, "City name"),
            "days": _param(INT, "Number of days to forecast", minimum=1, maximum=14),
        },
        ["city", "days"],
        [
            "Give me the {days}-day forecast for {city}.",
            "What will the weather be in {city} over the next {days} days?",
        ],
    ),
    _fn(
        "convert_currency",
        "Convert an amount of money from one currency to another at today's rate.",
        {
            "amount": _param(N, "Amount to convert", minimum=1, maximum=5000),
            "from_currency": _param(S, "ISO code of the source currency", enum=CURRENCIES),
            "to_currency": _param(S, "ISO code of the target currency", enum=CURRENCIES),
        },
        ["amount", "from_currency", "to_currency"],
        [
            "How much is {amount} {from_currency} in {to_currency}?",
            "Convert {amount} {from_currency} to {to_currency}.",
            "I have {amount} {from_currency}; what is that worth in {to_currency}?",
        ],
    ),
    _fn(
        "get_stock_price",
        "Look up the latest trading price of a stock by its ticker symbol.",
        {
            "ticker": _param(S, "Stock ticker symbol, e.g. ACME"),
            "exchange": _param(S, "Stock exchange", enum=["NYSE", "NASDAQ", "LSE", "TSE"]),
        },
        ["ticker"],
        [
            "What is {ticker} trading at?",
            "Get me the latest price of {ticker} on the {exchange}.",
            "Quote for ticker {ticker}, please.",
        ],
    ),
    _fn(
        "calculate_loan_payment",
        "Compute the fixed monthly payment of an amortised loan.",
        {
            "principal": _param(N, "Loan amount", minimum=1000, maximum=500000),
            "annual_rate": _param(N, "Annual interest rate in percent", minimum=1, maximum=12),
            "years": _param(INT, "Loan term in years", minimum=1, maximum=30),
        },
        ["principal", "annual_rate", "years"],
        [
            "What's the monthly payment on a {principal} loan at {annual_rate}% "
            "over {years} years?",
            "Calculate my monthly installment: borrowing {principal} for {years} years "
            "at {annual_rate} percent.",
        ],
    ),
    _fn(
        "compound_interest",
        "Compute the future value of savings with compound interest.",
        {
            "principal": _param(N, "Initial deposit", minimum=100, maximum=100000),
            "rate": _param(N, "Annual interest rate in percent", minimum=1, maximum=10),
            "years": _param(INT, "Number of years", minimum=1, maximum=40),
            "compounds_per_year": _param(INT, "Compounding periods per year", enum=[1, 4, 12, 365]),
        },
        ["principal", "rate", "years"],
        [
            "If I deposit {principal} at {rate}% for {years} years, how much will I have?",
            "Future value of {principal} at {rate} percent over {years} years compounded "
            "{compounds_per_year} times a year?",
        ],
    ),
    _fn(
        "calculate_tip",
        "Calculate the tip and total for a restaurant bill.",
        {
            "bill": _param(N, "Bill amount before tip", minimum=5, maximum=400),
            "percent": _param(INT, "Tip percentage", minimum=5, maximum=30),
            "people": _param(INT, "Number of people splitting the bill", minimum=1, maximum=12),
        },
        ["bill", "percent"],
        [
            "What's a {percent}% tip on a {bill} bill?",
            "Split a {bill} bill with a {percent}% tip among {people} people.",
        ],
    ),
    _fn(
        "solve_quadratic",
        "Find the real roots of a quadratic equation a*x^2 + b*x + c = 0.",
        {
            "a": _param(INT, "Coefficient of x^2", minimum=1, maximum=9),
            "b": _param(INT, "Coefficient of x", minimum=-20, maximum=20),
            "c": _param(INT, "Constant term", minimum=-30, maximum=30),
        },
        ["a", "b", "c"],
        [
            "Solve {a}x^2 + {b}x + {c} = 0.",
            "Find the roots of the quadratic with a={a}, b={b}, c={c}.",
        ],
    ),
    _fn(
        "compute_statistics",
        "Compute summary statistics (mean, median, standard deviation) of numbers.",
        {
            "values": _param("array", "The numbers", items={"type": "number"}),
            "statistic": _param(
                S, "Which statistic to compute", enum=["mean", "median", "stdev", "all"]
            ),
        },
        ["values"],
        [
            "What's the {statistic} of {values}?",
            "Give me summary statistics for these numbers: {values}.",
        ],
    ),
    _fn(
        "convert_units",
        "Convert a quantity between units of length, mass or volume.",
        {
            "value": _param(N, "Quantity to convert", minimum=1, maximum=1000),
            "from_unit": _param(
                S, "Unit to convert from", enum=["km", "mile", "kg", "pound", "litre", "gallon"]
            ),
            "to_unit": _param(
                S, "Unit to convert to", enum=["km", "mile", "kg", "pound", "litre", "gallon"]
            ),
        },
        ["value", "from_unit", "to_unit"],
        [
            "How many {to_unit} is {value} {from_unit}?",
            "Convert {value} {from_unit} into {to_unit}.",
        ],
    ),
    _fn(
        "is_prime",
        "Check whether an integer is a prime number.",
        {"number": _param(INT, "The integer to test", minimum=2, maximum=100000)},
        ["number"],
        ["Is {number} prime?", "Check if {number} is a prime number."],
    ),
    _fn(
        "greatest_common_divisor",
        "Compute the greatest common divisor of two integers.",
        {
            "a": _param(INT, "First integer", minimum=2, maximum=5000),
            "b": _param(INT, "Second integer", minimum=2, maximum=5000),
        },
        ["a", "b"],
        ["What is the GCD of {a} and {b}?", "Find the greatest common divisor of {a} and {b}."],
    ),
    _fn(
        "list_directory",
        "List the files in a directory of the user's workspace.",
        {
            "path": _param(S, "Directory path"),
            "include_hidden": _param(B, "Whether to include hidden files"),
        },
        ["path"],
        [
            "What files are in {path}?",
            "List everything in {path}, hidden files included: {include_hidden}.",
        ],
    ),
    _fn(
        "read_file",
        "Read a text file and return its contents.",
        {
            "path": _param(S, "File path"),
            "max_lines": _param(INT, "Maximum number of lines to return", minimum=10, maximum=500),
        },
        ["path"],
        ["Show me the contents of {path}.", "Print the first {max_lines} lines of {path}."],
    ),
    _fn(
        "search_files",
        "Search files under a folder for a text pattern.",
        {
            "pattern": _param(S, "Text to search for"),
            "folder": _param(S, "Folder to search in"),
            "case_sensitive": _param(B, "Match case exactly"),
        },
        ["pattern", "folder"],
        ["Find '{pattern}' in the files under {folder}.", "Search {folder} for {pattern}."],
    ),
    _fn(
        "create_calendar_event",
        "Create an event in the user's calendar.",
        {
            "title": _param(S, "Event title"),
            "date": _param(S, "Date in YYYY-MM-DD format"),
            "start_time": _param(S, "Start time, HH:MM 24-hour"),
            "duration_minutes": _param(INT, "Length in minutes", enum=[15, 30, 45, 60, 90, 120]),
        },
        ["title", "date", "start_time"],
        [
            "Put '{title}' in my calendar on {date} at {start_time}.",
            "Schedule {title} for {date} at {start_time}, lasting {duration_minutes} minutes.",
        ],
    ),
    _fn(
        "list_calendar_events",
        "List the events in the user's calendar on a given date.",
        {"date": _param(S, "Date in YYYY-MM-DD format")},
        ["date"],
        ["What's on my calendar on {date}?", "Do I have any meetings on {date}?"],
    ),
    _fn(
        "set_reminder",
        "Set a reminder that fires at a given time.",
        {"message": _param(S, "What to be reminded of"), "time": _param(S, "Time, HH:MM 24-hour")},
        ["message", "time"],
        ["Remind me to {message} at {time}.", "Set a reminder at {time}: {message}."],
    ),
    _fn(
        "send_email",
        "Send an email to a recipient.",
        {
            "to": _param(S, "Recipient email address"),
            "subject": _param(S, "Subject line"),
            "body": _param(S, "Message text"),
        },
        ["to", "subject", "body"],
        [
            "Email {to} with the subject '{subject}' saying: {body}",
            "Send a message to {to}, subject {subject}, body: {body}",
        ],
    ),
    _fn(
        "translate_text",
        "Translate text into another language.",
        {
            "text": _param(S, "Text to translate"),
            "target_language": _param(
                S,
                "Target language",
                enum=["French", "German", "Spanish", "Japanese", "Italian", "Portuguese"],
            ),
        },
        ["text", "target_language"],
        [
            "Translate '{text}' into {target_language}.",
            "How do you say '{text}' in {target_language}?",
        ],
    ),
    _fn(
        "search_restaurants",
        "Find restaurants in a city by cuisine.",
        {
            "city": _param(S, "City name"),
            "cuisine": _param(
                S,
                "Type of food",
                enum=["italian", "thai", "mexican", "indian", "japanese", "vegan"],
            ),
            "max_price": _param(
                INT, "Price level from 1 (cheap) to 4 (expensive)", minimum=1, maximum=4
            ),
        },
        ["city", "cuisine"],
        [
            "Find {cuisine} restaurants in {city}.",
            "I want {cuisine} food in {city} at price level {max_price} or below.",
        ],
    ),
    _fn(
        "book_hotel",
        "Book a hotel room in a city for given dates.",
        {
            "city": _param(S, "City name"),
            "check_in": _param(S, "Check-in date, YYYY-MM-DD"),
            "nights": _param(INT, "Number of nights", minimum=1, maximum=14),
            "guests": _param(INT, "Number of guests", minimum=1, maximum=6),
        },
        ["city", "check_in", "nights"],
        [
            "Book a hotel in {city} from {check_in} for {nights} nights.",
            "I need a room in {city} for {guests} guests, checking in {check_in}, {nights} nights.",
        ],
    ),
    _fn(
        "search_flights",
        "Search flights between two cities on a date.",
        {
            "origin": _param(S, "Departure city"),
            "destination": _param(S, "Arrival city"),
            "date": _param(S, "Departure date, YYYY-MM-DD"),
            "cabin": _param(S, "Cabin class", enum=["economy", "premium", "business", "first"]),
        },
        ["origin", "destination", "date"],
        [
            "Find flights from {origin} to {destination} on {date}.",
            "Any {cabin} seats from {origin} to {destination} on {date}?",
        ],
    ),
    _fn(
        "get_directions",
        "Get travel directions between two places.",
        {
            "start": _param(S, "Starting place"),
            "end": _param(S, "Destination"),
            "mode": _param(S, "Travel mode", enum=["driving", "walking", "cycling", "transit"]),
        },
        ["start", "end"],
        ["How do I get from {start} to {end}?", "Give me {mode} directions from {start} to {end}."],
    ),
    _fn(
        "get_time_in_timezone",
        "Get the current local time in an IANA time zone.",
        {
            "timezone": _param(
                S,
                "IANA time zone",
                enum=[
                    "Europe/Paris",
                    "Asia/Tokyo",
                    "America/New_York",
                    "Australia/Sydney",
                    "Africa/Nairobi",
                ],
            )
        },
        ["timezone"],
        ["What time is it in {timezone}?", "Current local time for {timezone}?"],
    ),
    _fn(
        "get_news_headlines",
        "Get the latest news headlines on a topic.",
        {
            "topic": _param(
                S, "News topic", enum=["technology", "sports", "science", "business", "health"]
            ),
            "count": _param(INT, "How many headlines", minimum=1, maximum=10),
        },
        ["topic"],
        ["What's new in {topic}?", "Give me the top {count} {topic} headlines."],
    ),
    _fn(
        "define_word",
        "Look up the dictionary definition of an English word.",
        {"word": _param(S, "The word")},
        ["word"],
        ["What does '{word}' mean?", "Define the word {word}."],
    ),
    _fn(
        "count_words",
        "Count the words in a piece of text.",
        {"text": _param(S, "The text")},
        ["text"],
        ["How many words are in: {text}"],
    ),
    _fn(
        "create_todo",
        "Add an item to the user's to-do list.",
        {
            "task": _param(S, "What to do"),
            "priority": _param(S, "Priority", enum=["low", "medium", "high"]),
        },
        ["task"],
        ["Add '{task}' to my to-do list.", "New {priority}-priority task: {task}."],
    ),
    _fn(
        "play_music",
        "Play music by an artist or genre on the user's speaker.",
        {
            "query": _param(S, "Artist, album or genre"),
            "volume": _param(INT, "Volume from 0 to 100", minimum=10, maximum=100),
        },
        ["query"],
        ["Play some {query}.", "Put on {query} at volume {volume}."],
    ),
    _fn(
        "set_thermostat",
        "Set the home thermostat to a target temperature.",
        {
            "temperature": _param(
                INT, "Target temperature in degrees Celsius", minimum=16, maximum=28
            ),
            "room": _param(S, "Room", enum=["living room", "bedroom", "kitchen", "office"]),
        },
        ["temperature"],
        ["Set the thermostat to {temperature} degrees.", "Make the {room} {temperature} degrees."],
    ),
    _fn(
        "toggle_lights",
        "Turn the lights in a room on or off.",
        {
            "room": _param(
                S, "Room", enum=["living room", "bedroom", "kitchen", "office", "hallway"]
            ),
            "on": _param(B, "True to switch on, false to switch off"),
        },
        ["room", "on"],
        ["Switch the {room} lights, on={on}.", "Lights in the {room}: set on to {on}."],
    ),
    _fn(
        "get_recipe",
        "Find a recipe for a dish.",
        {
            "dish": _param(S, "Name of the dish"),
            "servings": _param(INT, "Number of servings", minimum=1, maximum=10),
        },
        ["dish"],
        ["How do I make {dish}?", "Recipe for {dish} for {servings} people, please."],
    ),
    _fn(
        "calculate_bmi",
        "Compute body mass index from weight and height.",
        {
            "weight_kg": _param(N, "Weight in kilograms", minimum=40, maximum=140),
            "height_cm": _param(N, "Height in centimetres", minimum=140, maximum=210),
        },
        ["weight_kg", "height_cm"],
        ["What's the BMI for {weight_kg} kg and {height_cm} cm?"],
    ),
    _fn(
        "calories_burned",
        "Estimate calories burned by an activity.",
        {
            "activity": _param(
                S, "Activity", enum=["running", "cycling", "swimming", "walking", "yoga"]
            ),
            "minutes": _param(INT, "Duration in minutes", minimum=10, maximum=180),
        },
        ["activity", "minutes"],
        ["How many calories does {minutes} minutes of {activity} burn?"],
    ),
    _fn(
        "lookup_order_status",
        "Look up the shipping status of an order by its ID.",
        {"order_id": _param(S, "Order identifier, e.g. ORD-12345")},
        ["order_id"],
        ["Where is my order {order_id}?", "Status of order {order_id}?"],
    ),
    _fn(
        "get_exchange_rate_history",
        "Get the historical exchange rate between two currencies on a date.",
        {
            "base": _param(S, "Base currency", enum=CURRENCIES),
            "quote": _param(S, "Quote currency", enum=CURRENCIES),
            "date": _param(S, "Date, YYYY-MM-DD"),
        },
        ["base", "quote", "date"],
        ["What was the {base}/{quote} rate on {date}?"],
    ),
    _fn(
        "generate_password",
        "Generate a random password.",
        {
            "length": _param(INT, "Number of characters", minimum=8, maximum=64),
            "include_symbols": _param(B, "Include punctuation symbols"),
        },
        ["length"],
        [
            "Generate a {length}-character password.",
            "I need a password of length {length}; symbols: {include_symbols}.",
        ],
    ),
    _fn(
        "shorten_url",
        "Create a short link for a URL.",
        {"url": _param(S, "The long URL")},
        ["url"],
        ["Shorten this link: {url}", "Make a short URL for {url}."],
    ),
    _fn(
        "get_population",
        "Get the population of a country.",
        {
            "country": _param(S, "Country name"),
            "year": _param(INT, "Year", minimum=1990, maximum=2024),
        },
        ["country"],
        ["What is the population of {country}?", "How many people lived in {country} in {year}?"],
    ),
    _fn(
        "distance_between_cities",
        "Compute the straight-line distance between two cities.",
        {
            "city_a": _param(S, "First city"),
            "city_b": _param(S, "Second city"),
            "unit": _param(S, "Distance unit", enum=["km", "miles"]),
        },
        ["city_a", "city_b"],
        ["How far is {city_a} from {city_b}?", "Distance between {city_a} and {city_b} in {unit}?"],
    ),
    _fn(
        "run_sql_query",
        "Run a read-only SQL query on the analytics database.",
        {
            "query": _param(S, "SQL SELECT statement"),
            "limit": _param(INT, "Maximum rows", minimum=1, maximum=1000),
        },
        ["query"],
        ["Run this query: {query}", "Execute {query} and return at most {limit} rows."],
    ),
    _fn(
        "resize_image",
        "Resize an image file to a given width and height in pixels.",
        {
            "path": _param(S, "Image file path"),
            "width": _param(INT, "Width in pixels", minimum=16, maximum=4096),
            "height": _param(INT, "Height in pixels", minimum=16, maximum=4096),
        },
        ["path", "width", "height"],
        [
            "Resize {path} to {width}x{height}.",
            "Make {path} {width} pixels wide and {height} high.",
        ],
    ),
    _fn(
        "check_website_status",
        "Check whether a website is up and how fast it responds.",
        {"url": _param(S, "Website URL")},
        ["url"],
        ["Is {url} down?", "Check if {url} is reachable."],
    ),
)


def builtin_tools() -> list[Tool]:
    return [entry.tool for entry in BUILTIN_LIBRARY]


# Questions no built-in tool can answer: the right reply is text, not a call.
OFF_TOPIC_QUESTIONS: tuple[str, ...] = (
    "Write a haiku about autumn leaves.",
    "Who painted the ceiling of a famous chapel in Rome?",
    "Explain the difference between a list and a tuple in Python.",
    "Tell me a joke about cats.",
    "What is the capital of Australia?",
    "Summarise the plot of a detective novel in two sentences.",
    "Why is the sky blue?",
    "Give me three tips for better sleep.",
    "What's a good name for a golden retriever puppy?",
    "How do vaccines work?",
    "Recommend a board game for four players.",
    "What rhymes with orange?",
    "Draft a polite note declining a party invitation.",
    "Who invented the telephone?",
    "What is the boiling point of water at sea level?",
    "Describe the smell of rain.",
    "How many legs does a spider have?",
    "Suggest a weekend hobby that costs nothing.",
    "What's the difference between weather and climate?",
    "Compose a limerick about a lighthouse.",
)


# Hard negatives: a question in a function's own domain that the function cannot answer (the
# kind BFCL's irrelevance category asks). Offered that very function, the right reply is text.
NEAR_MISS_QUESTIONS: dict[str, tuple[str, ...]] = {
    "get_current_weather": ("Why is the sky blue on a clear day?", "What causes thunder?"),
    "get_weather_forecast": ("What was the weather in Oslo on 3 March 1998?",),
    "convert_currency": ("Which country first used paper money?",),
    "get_stock_price": ("Who founded the company behind the ticker AAPL?",),
    "calculate_loan_payment": ("Should I take a fixed or a variable rate mortgage?",),
    "compound_interest": ("Who is credited with inventing compound interest?",),
    "calculate_tip": ("Is tipping customary in restaurants in Japan?",),
    "solve_quadratic": ("Find the roots of the cubic x^3 - 6x^2 + 11x - 6 = 0.",),
    "compute_statistics": ("What is the difference between a median and a mode?",),
    "convert_units": ("Convert 3 hours and 20 minutes into seconds.",),
    "is_prime": ("What is the largest prime number known today?",),
    "greatest_common_divisor": ("Compute the least common multiple of 12 and 18.",),
    "list_directory": ("Delete the folder logs/old from my workspace.",),
    "read_file": ("Rename notes/ideas.md to notes/plans.md.",),
    "search_files": ("How many lines of code does the Linux kernel have?",),
    "create_calendar_event": ("What day of the week was 1 January 2000?",),
    "list_calendar_events": ("Cancel my dentist appointment next Tuesday.",),
    "set_reminder": ("What time is it in Tokyo right now?",),
    "send_email": ("Check whether I have any unread emails from Maria.",),
    "translate_text": ("Which language has the most native speakers?",),
    "search_restaurants": ("How long should I boil an egg for a soft yolk?",),
    "book_hotel": ("Cancel my hotel booking in Rome.",),
    "search_flights": ("How long is the flight time from the Earth to the Moon?",),
    "get_directions": ("How tall is the Eiffel Tower?",),
    "get_time_in_timezone": ("Why do some countries use daylight saving time?",),
    "get_news_headlines": ("Who won the football World Cup in 1966?",),
    "define_word": ("Translate the word 'butterfly' into German.",),
    "count_words": ("Summarise this text in one sentence: the meeting moved to Friday.",),
    "create_todo": ("Mark 'buy milk' as done on my to-do list.",),
    "play_music": ("Who wrote the lyrics of Bohemian Rhapsody?",),
    "set_thermostat": ("What is the ideal humidity for a bedroom?",),
    "toggle_lights": ("How many lumens does a 60 W bulb give?",),
    "get_recipe": ("How many calories are in an apple?",),
    "calculate_bmi": ("What is a healthy resting heart rate?",),
    "calories_burned": ("How many calories should I eat in a day?",),
    "lookup_order_status": ("I want a refund for my last order.",),
    "get_exchange_rate_history": ("Will the euro rise against the dollar next year?",),
    "generate_password": ("Is my password 'hunter2' in a known data breach?",),
    "shorten_url": ("Who invented the World Wide Web?",),
    "get_population": ("What is the official language of Brazil?",),
    "distance_between_cities": ("What is the driving time from Paris to Berlin with traffic?",),
    "run_sql_query": ("Explain what a SQL JOIN does.",),
    "resize_image": ("Remove the background from photo.png.",),
    "check_website_status": ("Who owns the domain example.com?",),
}
