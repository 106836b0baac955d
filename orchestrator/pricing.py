"""What model calls cost: a price table (USD per million tokens) from configuration."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.types import Usage


class Price(BaseModel):
    """USD per million input and output tokens, and for prompt-cache reads and writes
    (by default a tenth and one and a quarter of the input price, as providers bill them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cache_read_per_mtok: float | None = Field(default=None, ge=0)
    cache_write_per_mtok: float | None = Field(default=None, ge=0)

    def of(self, usage: Usage) -> float:
        """USD for this usage."""
        read = (
            self.input_per_mtok * 0.1
            if self.cache_read_per_mtok is None
            else self.cache_read_per_mtok
        )
        write = (
            self.input_per_mtok * 1.25
            if self.cache_write_per_mtok is None
            else self.cache_write_per_mtok
        )
        return (
            usage.input_tokens * self.input_per_mtok
            + usage.output_tokens * self.output_per_mtok
            + usage.cache_read_tokens * read
            + usage.cache_write_tokens * write
        ) / 1e6


# On-demand list prices per million tokens, keyed as model specs name them (a bare id is
# Bedrock). Override or add to them with `LOCKGATE_PRICES` (JSON: spec -> price), e.g. a
# zero price for a model on your own OpenAI-compatible server; an unlisted model is billed at
# the table's fallback, which is deliberately high so that a dollar budget errs on the safe side.
DEFAULT_PRICES: dict[str, Price] = {
    "amazon.nova-micro-v1:0": Price(input_per_mtok=0.035, output_per_mtok=0.14),
    "amazon.nova-lite-v1:0": Price(input_per_mtok=0.06, output_per_mtok=0.24),
    "amazon.nova-pro-v1:0": Price(input_per_mtok=0.80, output_per_mtok=3.20),
    "anthropic.claude-3-5-haiku-20241022-v1:0": Price(input_per_mtok=0.80, output_per_mtok=4.00),
    "anthropic.claude-sonnet-4-20250514-v1:0": Price(input_per_mtok=3.00, output_per_mtok=15.00),
    "openai:gpt-4o-mini": Price(input_per_mtok=0.15, output_per_mtok=0.60),
    "openai:gpt-4o": Price(input_per_mtok=2.50, output_per_mtok=10.00),
    "openai:gpt-4.1-nano": Price(input_per_mtok=0.10, output_per_mtok=0.40),
    "openai:gpt-4.1-mini": Price(input_per_mtok=0.40, output_per_mtok=1.60),
    "openai:gpt-4.1": Price(input_per_mtok=2.00, output_per_mtok=8.00),
    "anthropic:claude-3-5-haiku-20241022": Price(input_per_mtok=0.80, output_per_mtok=4.00),
    "anthropic:claude-3-5-haiku-latest": Price(input_per_mtok=0.80, output_per_mtok=4.00),
    "anthropic:claude-sonnet-4-20250514": Price(input_per_mtok=3.00, output_per_mtok=15.00),
    "anthropic:claude-sonnet-4-0": Price(input_per_mtok=3.00, output_per_mtok=15.00),
}


class PriceTable(BaseModel):
    """Prices by model id. Scripted models are free; an unknown model uses `fallback`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    fallback: Price = Price(input_per_mtok=3.00, output_per_mtok=15.00)

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Price]) -> PriceTable:
        """The default prices, with `overrides` replacing or adding entries."""
        return cls(prices={**DEFAULT_PRICES, **overrides})

    def price(self, model_id: str) -> Price:
        """The price of `model_id` (cross-region prefixes like `eu.` and a `bedrock:` prefix
        are ignored)."""
        if model_id.startswith("scripted:"):
            return Price(input_per_mtok=0, output_per_mtok=0)
        model_id = model_id.removeprefix("bedrock:")
        bare = (
            model_id.split(".", 1)[1]
            if model_id.split(".", 1)[0] in {"us", "eu", "apac", "global"}
            else model_id
        )
        return self.prices.get(model_id) or self.prices.get(bare) or self.fallback

    def cost(self, model_id: str, usage: Usage) -> float:
        """USD for one call."""
        return self.price(model_id).of(usage)
