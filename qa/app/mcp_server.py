"""The documents as tools for MCP clients (Claude Desktop, Cursor, VS Code, agent frameworks):
`search_documents` (passages with titles, sections and offsets) and `ask` (a verified answer,
its short answer and its citations). Only these two: uploads, removals and rebuilds stay in the
app. Served over streamable HTTP at `/mcp` by `qa serve --mcp` (`QA_MCP=1`), or over stdio by
`qa mcp` for clients that start a local process. Built on the official `mcp` SDK (v2 API).
"""

from __future__ import annotations

import logging

import anyio
from pydantic import BaseModel, Field

from qa.app.guards import answering
from qa.app.render import answer_markdown, citations_json, confidence
from qa.errors import QAError
from qa.pipeline import Pipeline
from qa.types import Answer

log = logging.getLogger(__name__)

MAX_K = 20
INSTRUCTIONS = ("Answers questions from the user's own documents (the docqa corpus). Use `ask` for a question: the "
                "answer quotes the sentence that proves it and cites the passages; \"The documents do not say.\" "
                "means the documents do not hold the answer. Use `search_documents` to read the passages about a topic.")


class Passage(BaseModel):
    rank: int = Field(description="1 is the best match")
    title: str = Field(description="the document's title")
    path: str = Field(description="the document's file, relative to the corpus folder")
    section: str = Field(description="the heading path of the passage ('' for the lead)")
    place: str = Field(description='where in its file, as a person names it: "sheet Sales, row 4", "slide 2", "page 3", a section path')
    text: str
    start: int = Field(description="character offset of the passage in the document")
    end: int
    page: int | None = Field(description="the PDF page, if any")
    score: float = Field(description="retrieval score (higher is better)")


class SearchResult(BaseModel):
    query: str
    passages: list[Passage]


class Citation(BaseModel):
    marker: int = Field(description="the [n] in the answer")
    title: str
    path: str
    section: str
    place: str = Field(description='where in its file the quote is: "sheet Sales, row 4", "slide 2", "page 3", a section path')
    quote: str = Field(description="the cited text, verbatim in the document at [start, end)")
    start: int
    end: int
    page: int | None


class AskResult(BaseModel):
    question: str
    answer: str = Field(description="the answer as a person reads it (Markdown, with [n] markers)")
    short_answer: str | None = Field(description='the words that answer ("Yes"/"No" for a yes/no question), or null when not answered')
    abstained: bool = Field(description="true when no answer is given (outcome tentative or declined)")
    outcome: str = Field(description='"answer"; "tentative": not sure, the closest passage is quoted and cited; '
                                     '"declined": the documents do not say')
    confidence: float | None = Field(description="the reader's probability that its best reading answers the question")
    citations: list[Citation]


def build_mcp(pipeline: Pipeline):  # noqa: ANN201 - an MCPServer
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("docqa", instructions=INSTRUCTIONS)

    @server.tool()
    async def search_documents(query: str, k: int = 5) -> SearchResult:
        """Search the documents: the k passages (1-20) that best match the query, best first,
        each with its document's title, path, section and character offsets."""
        if not 1 <= k <= MAX_K:
            raise ToolError(f"k must be from 1 to {MAX_K}, not {k}")
        try:
            cleaned, passages = await anyio.to_thread.run_sync(pipeline.search, query, k, limiter=answering())
        except QAError as error:
            raise ToolError(str(error)) from None
        index = pipeline.index
        return SearchResult(query=cleaned, passages=[
            Passage(rank=n, title=index.title(p.chunk), path=index.path(p.chunk),
                    section=p.chunk.section, place=index.place(p.chunk), text=p.chunk.text, start=p.chunk.start, end=p.chunk.end,
                    page=p.chunk.page, score=round(float(p.score), 6))
            for n, p in enumerate(passages, start=1)])

    @server.tool()
    async def ask(question: str) -> AskResult:
        """Answer a question from the documents. The answer quotes the sentence that proves it and
        cites its passages ([n]); when it is not sure, "Not sure" and the closest passage quoted
        (outcome "tentative"); "The documents do not say." when they do not hold the answer."""
        try:
            answer: Answer = await anyio.to_thread.run_sync(pipeline.ask, question, limiter=answering())
        except QAError as error:
            raise ToolError(str(error)) from None
        return AskResult(question=answer.question, answer=answer_markdown(answer), abstained=answer.abstained,
                         outcome=answer.outcome, confidence=confidence(answer),
                         short_answer=answer.short_text or None,
                         citations=[Citation(**c) for c in citations_json(answer, pipeline.index)])

    return server


def http_app(server):  # noqa: ANN001, ANN201 - the Starlette app serving `server` at /mcp
    from mcp.server.transport_security import TransportSecuritySettings

    # Host and Origin are checked by the app's RequestGuard (QA_ALLOWED_HOSTS), in front of this.
    return server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True,
                                      transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))


def serve_stdio(pipeline: Pipeline) -> int:
    """`qa mcp`: the two tools over stdio (stdout carries the protocol; logs go to stderr)."""
    pipeline.warm_up(generator=False)
    build_mcp(pipeline).run("stdio")
    return 0
